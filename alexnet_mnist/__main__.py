from alexnet_mnist.cli.app import main

main()
