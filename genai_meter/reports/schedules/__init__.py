"""Scheduled exports: slots claimed once, rendered under the schedule's scope, delivered."""
