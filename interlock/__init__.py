"""Interlock: the command line, the settings tree, the vLLM emulator and the local worker."""
