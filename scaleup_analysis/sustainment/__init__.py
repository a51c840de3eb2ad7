"""Sustainment (pérennisation): does the practice last once the scale-up support ends?"""
