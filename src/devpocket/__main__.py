from devpocket.cli import main

raise SystemExit(main())
