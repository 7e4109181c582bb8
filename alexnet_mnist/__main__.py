from alexnet_mnist.app import main

main()
