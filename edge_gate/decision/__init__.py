"""Decision policy: when a face track opens the door."""
