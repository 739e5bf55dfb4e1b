from globeguard.cli import main

main()
