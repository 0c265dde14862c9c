"""``qemu-dbus probe``: what a less-trusted peer can do to a real QEMU, one call at a time.

The registry is the schema: for every method a peer may call on QEMU (and every writable
property), `plan` picks the objects that export it and the order a real client needs
(registrations first), `values` derives the calls from each argument's D-Bus type and from the
registry's own words (documented ranges, enumerations, bounds read from properties), and
`descriptors` makes every kind of file descriptor a peer can pass for an ``h``.  `engine` makes
each call on a QEMU it launched itself and, after every call, watches for a crash, a missing
reply, a stall or a hang (a liveness read of a VM property), a reply that breaks the registry;
it relaunches QEMU after a crash or a hang and bisects integer thresholds down to a minimal
reproduction.  `peers` plays the client side QEMU waits for: the listener connections and the
clipboard client, whose answers are probed too, all on the transport of ``conform`` (messages
validated before they are decoded, bounded, served by one event loop).  `findings` turns faults into diagnostics with a
one-line command that reproduces each; `results` records them per member and release, for the
documentation.

Nothing here is imported by ``qemu-dbus`` unless the probe runs, except `results`, which reads
the recorded results without jeepney (the Sphinx extension renders them).
"""
