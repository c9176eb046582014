"""SyncTalklip (the paper in shared/seed): AV-SyncNet and the generator. Not built yet."""
