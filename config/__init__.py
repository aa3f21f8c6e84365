"""Node configuration and genesis: TOML in, validated frozen objects out."""
