"""The yolov5 image: its backend, schema and templates on the shared ``ymir_yolov5lib`` layer."""
