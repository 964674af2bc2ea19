"""In-process mechanics of building one batch: row gathers on torch's threads, variable-length
gathers, reused output buffers, and the threads a batch may use."""
