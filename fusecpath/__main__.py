from fusecpath.cli import main

main()
