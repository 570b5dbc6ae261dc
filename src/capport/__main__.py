from capport.cli import main

main()
