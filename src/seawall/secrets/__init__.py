"""Secret detection: rules as data, one keyword pass, patterns confirmed around each hit."""
