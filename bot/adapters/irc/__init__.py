"""The IRC adapter: sheriffs schedule and follow jobs from IRC channels and private messages."""
