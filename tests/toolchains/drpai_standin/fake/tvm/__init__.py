"""Stand-in for the parts of Renesas DRP-AI TVM (tvm.relay.mera.drp) the DRP-AI mode step calls."""
