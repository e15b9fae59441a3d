import sys

from mailtrace.cli import main

sys.exit(main())
