console.log("tour")
