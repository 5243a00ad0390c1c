"""The channels' customers (three dealers, addresses, consents, marketers) serve the journeys' tests too."""

from tests.channels.conftest import audience  # noqa: F401 - a fixture
