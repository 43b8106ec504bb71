"""Session-wide pytest settings."""


def pytest_report_header(config):
    # Printed on every run so any co-simulation failure can be replayed with the same stimulus.
    from tests.cosim_configs import BASE_SEED, SEED_VARIABLE
    return f"hwnorm co-simulation seed: {SEED_VARIABLE}={BASE_SEED}"
