"""Co-simulation: cocotb testbenches, golden-model jobs, and the simulator runner."""
