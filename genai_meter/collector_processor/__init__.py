"""collector_processor"""
