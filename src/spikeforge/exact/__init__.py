"""Exact-gradient training: continuous-time event simulation, EventProp and analytic time-to-first-spike layers."""
