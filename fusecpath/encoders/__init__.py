"""Runtime side of the zoo: preprocessing, weight resolution and the built-in CPU encoders."""
