from suscli.cli import main

main()
