"""Captured kubectl protobuf bodies and the capture server that records them."""
