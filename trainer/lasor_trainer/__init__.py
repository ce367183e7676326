"""lasor trainer: dataset, model, neural mesh renderer, losses, training loop, metrics."""
