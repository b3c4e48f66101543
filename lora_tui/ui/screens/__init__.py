"""The app's screens: the five wizard steps, the monitor, the runs list and the help."""
