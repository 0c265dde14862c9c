"""``python -m sphinxext_qemudbus`` is ``qemu-dbus``."""

from .cli import main

raise SystemExit(main())
