"""Hardware and its stand-ins.

Camera sources and the PWM board client, and what replaces the board without hardware:
the board emulator, the pty null modem and the real firmware in simavr.
"""
