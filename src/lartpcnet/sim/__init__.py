"""The built-in LArTPC fast simulation (physics-based, not Geant4): see docs/simulation.md."""
