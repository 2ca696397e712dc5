from powerstrip.cli import main

main()
