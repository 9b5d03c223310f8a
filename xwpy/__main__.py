from xwpy.client.cli import main

main()
