from regfs.cli import main

main()
