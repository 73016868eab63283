"""The embedded default bundle, its labels and the sample photos, as package data.

Installed as the package ``ortviz_models`` (the wheel carries this directory; an editable
install maps it here); :mod:`ortviz.defaults` finds it.
"""
