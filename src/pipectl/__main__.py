from pipectl.cli import main

main()
