from amogate.cli import main

main()
