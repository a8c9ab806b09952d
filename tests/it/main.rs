mod gpu_probes;
