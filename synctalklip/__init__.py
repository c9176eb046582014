"""SyncTalklip (Yang et al., "SyncTalklip: Highly Synchronized Lip-Readable Speaker Generation with
Multi-Task Learning", ACM MM 2024): AV-SyncNet (stage 1), the generator (stage 2), its variants and
ablations, as tfgbench model plugins. Commands: ``synctalklip --help``."""
