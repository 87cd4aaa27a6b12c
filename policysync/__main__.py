from policysync.cli import main

main()
