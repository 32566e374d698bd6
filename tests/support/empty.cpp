// Keeps mallorn_test_support a valid library before other support files exist.
