"""GPU inventory (NVML), placement, and pinned memory. Filled by the GPU issue."""

__all__: list[str] = []
