"""alert_rules"""
