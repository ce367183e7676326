"""lasor-datagen: panoramic, occlusion-aware synthetic SMPL data rendered with pyrender."""
