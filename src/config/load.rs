//! Reading the config file and the environment.
