"""The methods of the three papers. Each module registers its CLI stage on import."""
