"""The views: one module per command's result, one function per output format, chosen
from each module's registry. Helpers that several views share are in `common`."""
