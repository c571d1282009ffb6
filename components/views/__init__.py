"""The screens of the app: one module per screen (layout and event wiring), helpers in common.py."""
