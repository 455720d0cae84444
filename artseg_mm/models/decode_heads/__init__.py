"""models/decode_heads."""
