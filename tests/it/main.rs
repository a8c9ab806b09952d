mod gpu_configs;
