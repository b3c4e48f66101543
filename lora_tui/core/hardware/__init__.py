"""What the machine has: NVIDIA GPUs through NVML, Apple MPS, the CPU and RAM."""
