from ortviz.cli import main

main()
