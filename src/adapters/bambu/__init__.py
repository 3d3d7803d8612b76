"""Bambu Lab printers watched over their LAN MQTT interface (issue 15; docs/printers.md).

Turns each printer's ``device/{serial}/report`` messages into
:class:`printcore.queue.printer_status.PrinterReport` values for the queue.
"""
